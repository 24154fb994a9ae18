*> CUSTOMER MASTER RECORD - free format
*>================================================================
*> CUSTOMER MASTER RECORD - LAYOUT CUSTMAST
*>================================================================
01  CUSTOMER-MASTER.   *> the account number
  05  CUST-ID                 PIC 9(8).
  05  CUST-TYPE               PIC X.
  88  CUST-PERSON         VALUE 'P'.
  88  CUST-COMPANY        VALUE 'C' 'G'
  'X' THRU 'Z'.
  05  CUST-NAME.
  10  CUST-LAST-NAME      PIC X(20).
  10  CUST-FIRST-NAME     PIC X(15).
  05  CUST-ADDRESS.
  10  CUST-STREET         PIC X(25).
  10  CUST-CITY           PIC X(15).
  10  CUST-ZIP            PIC 9(5).
  10  CUST-COUNTRY        PIC XX VALUE 'US'.
  05  CUST-BALANCE            PIC S9(9)V99 COMP-3.
  05  CUST-CREDIT-LIMIT       PIC S9(7)V99
  USAGE IS PACKED-DECIMAL.
  05  CUST-OPEN-DATE.
  10  CUST-OPEN-YYYY      PIC 9(4).
  10  CUST-OPEN-MM        PIC 99.
  10  CUST-OPEN-DD        PIC 99.
  05  CUST-BRANCH             PIC S9(4) COMP.
  05  CUST-SCORE              PIC S9(3)
  SIGN IS LEADING SEPARATE CHARACTER.
  05  CUST-YTD-INTEREST       PIC S9(5)V99.
  05  FILLER                  PIC X(10).
  05  CUST-PHONE-COUNT        PIC 9.
  05  CUST-PHONES OCCURS 0 TO 3 TIMES
  DEPENDING ON CUST-PHONE-COUNT.
  10  PHONE-TYPE          PIC X.
  10  PHONE-NUMBER        PIC X(12).
  66  CUST-FULL-NAME RENAMES CUST-LAST-NAME THRU CUST-FIRST-NAME.
